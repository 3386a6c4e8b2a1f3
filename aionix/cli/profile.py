"""`aio login` and `aio profile`: the CLI's profiles in the credentials file
(`~/.config/aionix/credentials`, or `AIONIX_SECURITY_CREDENTIALS_FILE`; mode 0600)."""

from __future__ import annotations

import typer

from aionix.cli.client import EXIT_NOT_FOUND, EXIT_USAGE, Client, CLIError, credentials_path
from aionix.cli.state import state
from aionix.credentials import current_profile, load_profiles, remove_profile, save_profile, set_current

app = typer.Typer(help="CLI profiles (server URL and API key): list, use, remove.", no_args_is_help=True)
COLUMNS = ["current", "name", "url", "key"]


def _masked(key: object) -> str:
    text = str(key or "")
    return text[:10] + "…" if len(text) > 10 else ("(none)" if not text else "…")


def login(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="profile to write (default: --profile, else 'default')"),
    use: bool = typer.Option(True, "--use/--no-use", help="make it the current profile"),
) -> None:
    """Check `--url` and `--api-key` against the server, then save them as a profile."""
    st = state(ctx)
    if not st.url or not st.api_key:
        raise CLIError(
            "login needs --url and --api-key (e.g. aio login --url http://127.0.0.1:53000 --api-key aio_…)", EXIT_USAGE
        )
    profile = name or st.profile or "default"
    client = Client(url=st.url.rstrip("/"), api_key=st.api_key)
    me = client.get("/api/v1/whoami")  # a wrong key or URL fails here, before anything is written
    path = credentials_path()
    try:
        save_profile(path, profile, url=client.url, api_key=st.api_key)
        if use:
            set_current(path, profile)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    if st.quiet:
        print(profile)
        return
    current = " (current)" if use else ""
    print(
        f"logged in to {client.url} as {me['role']} of tenant {me['tenant']} ({me['key_id']}); "
        f"saved profile '{profile}'{current} in {path}"
    )


@app.command("list")
def list_profiles(ctx: typer.Context) -> None:
    """List the profiles (keys shown by their first characters only)."""
    st = state(ctx)
    path = credentials_path()
    current = current_profile(path)
    rows = [
        {
            "current": "*" if name == current else "",
            "name": name,
            "url": data.get("url", ""),
            "key": _masked(data.get("api_key")),
        }
        for name, data in load_profiles(path).items()
    ]
    st.emit({"items": rows, "current": current, "file": str(path)}, columns=COLUMNS, id_field="name")


@app.command("use")
def use_profile(ctx: typer.Context, name: str = typer.Argument(..., help="profile name")) -> None:
    """Make a profile the one `aio` uses when no --profile or AIONIX_PROFILE is given."""
    path = credentials_path()
    try:
        set_current(path, name)
    except KeyError:
        raise CLIError(f"no profile {name!r} in {path}", EXIT_NOT_FOUND) from None
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    if not state(ctx).quiet:
        print(f"now using profile '{name}' ({load_profiles(path)[name].get('url', '')})")


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="profile name")) -> None:
    """Remove a profile (its key stays valid on the server: revoke it with `aio keys revoke`)."""
    path = credentials_path()
    try:
        remove_profile(path, name)
    except KeyError:
        raise CLIError(f"no profile {name!r} in {path}", EXIT_NOT_FOUND) from None
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    if not state(ctx).quiet:
        print(f"removed profile '{name}'; the current profile is '{current_profile(path)}'")
