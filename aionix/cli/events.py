"""`aio events`: publish events to event triggers."""

from __future__ import annotations

import typer

from aionix.cli.state import read_document, state

app = typer.Typer(help="Events: publish {source, type, detail} to event triggers.", no_args_is_help=True)


@app.command("put")
def put(
    ctx: typer.Context,
    source: str = typer.Option(..., "--source", help="e.g. shop.orders"),
    type_: str = typer.Option(..., "--type", help="e.g. 'Order Placed'"),
    detail: str = typer.Option("{}", "--detail", help="JSON, @file or -"),
) -> None:
    """Publish one event; prints its id and how many triggers matched."""
    st = state(ctx)
    result = st.client.post(
        "/api/v1/events", {"source": source, "type": type_, "detail": read_document(detail, "detail")}
    )
    st.emit(result)
