"""An AionixFn Python function: `handler(event, context)` returns any JSON value."""

import os


def handler(event, context):
    name = (event or {}).get("name", "world")
    message = (event or {}).get("message", "")
    print(f"greeting {name} (invocation {context.invocation_id})")
    return {
        "greeting": f"{os.environ.get('GREETING', 'Hello')}, {name}!",
        "words": len(message.split()),
        "version": context.function_version,
        "idempotency_key": context.idempotency_key,
    }
