"""Every API route has an `aio` command (issue: "every route has a command").

The table maps each operation of the server's OpenAPI document to the command that calls it;
a new route without a command (or a command that disappeared) fails here."""

import httpx
import typer

from aionix.cli.main import app

COMMANDS = {
    "GET /api/v1/actions": "act list",
    "GET /api/v1/modules": "module list",
    "POST /api/v1/modules": "module install",
    "GET /api/v1/modules/schema": "module schema",
    "POST /api/v1/modules/validate": "module validate",
    "GET /api/v1/modules/{name}": "module get",
    "DELETE /api/v1/modules/{name}": "module remove",
    "GET /api/v1/modules/{name}/sbom": "module sbom",
    "POST /api/v1/modules/{name}/verify": "module verify",
    "POST /api/v1/modules/{name}/approve": "module approve",
    "POST /api/v1/modules/{name}/quarantine": "module quarantine",
    "POST /api/v1/modules/{name}/run": "module run",
    "GET /api/v1/module-keys": "module trust list",
    "POST /api/v1/module-keys": "module trust add",
    "DELETE /api/v1/module-keys/{name}": "module trust remove",
    "GET /api/v1/module-trust-roots": "module trust roots",
    "POST /api/v1/module-trust-roots": "module trust add-root",
    "DELETE /api/v1/module-trust-roots/{name}": "module trust remove-root",
    "GET /api/v1/runtime/capabilities": "runtime capabilities",
    "POST /api/v1/runtime/simulate": "runtime simulate",
    "POST /api/v1/copilot/sessions": "copilot open",
    "GET /api/v1/copilot/sessions/{id}": "copilot get",
    "POST /api/v1/copilot/sessions/{id}/operations": "copilot op",
    "POST /api/v1/copilot/sessions/{id}/apply": "copilot apply",
    "POST /api/v1/actions": "act create",
    "DELETE /api/v1/actions/{name}": "act delete",
    "GET /api/v1/actions/{name}": "act get",
    "PUT /api/v1/actions/{name}": "act update",
    "POST /api/v1/actions/{name}/execute": "act execute",
    "GET /api/v1/admin/backup": "admin backup",
    "GET /api/v1/admin/doctor": "admin doctor",
    "GET /api/v1/audit": "admin audit",
    "GET /api/v1/audit/verify": "admin audit verify",
    "GET /api/v1/audit/export": "admin audit export",
    "POST /api/v1/audit/export": "admin audit export",
    "GET /api/v1/policies": "policy list",
    "GET /api/v1/policies/{name}": "policy get",
    "PUT /api/v1/policies/{name}": "policy put",
    "DELETE /api/v1/policies/{name}": "policy delete",
    "GET /api/v1/policies/{name}/attachments": "policy attachments",
    "POST /api/v1/policies/{name}/attach": "policy attach",
    "POST /api/v1/policies/{name}/detach": "policy detach",
    "POST /api/v1/policies/simulate": "policy test",
    "GET /api/v1/policy-actions": "policy actions",
    "GET /api/v1/authflow/{state}": "act auth",
    "POST /api/v1/callbacks/{token}/failure": "wf callback",
    "POST /api/v1/callbacks/{token}/heartbeat": "wf callback",
    "POST /api/v1/callbacks/{token}/success": "wf callback",
    "GET /api/v1/connections": "act conn list",
    "POST /api/v1/connections": "act conn create",
    "DELETE /api/v1/connections/{name}": "act conn delete",
    "GET /api/v1/connections/{name}": "act conn get",
    "PUT /api/v1/connections/{name}": "act conn update",
    "POST /api/v1/connections/{name}/authorize": "act auth",
    "POST /api/v1/connections/{name}/test": "act conn test",
    "GET /api/v1/connectors": "act connectors",
    "POST /api/v1/events": "events put",
    "GET /api/v1/executions": "wf exec list",
    "GET /api/v1/executions/{id}": "wf exec get",
    "POST /api/v1/executions/{id}/cancel": "wf exec cancel",
    "GET /api/v1/executions/{id}/history": "wf exec history",
    "POST /api/v1/executions/{id}/redrive": "wf exec redrive",
    "GET /api/v1/executions/{id}/stream": "wf exec follow",
    "GET /api/v1/functions": "fn list",
    "POST /api/v1/functions": "fn create",
    "PUT /api/v1/functions/{name}": "fn deploy",
    "DELETE /api/v1/functions/{name}": "fn delete",
    "GET /api/v1/functions/{name}": "fn get",
    "GET /api/v1/functions/{name}/aliases/{alias}": "fn alias-get",
    "PUT /api/v1/functions/{name}/aliases/{alias}": "fn alias",
    "DELETE /api/v1/functions/{name}/aliases/{alias}": "fn alias-delete",
    "POST /api/v1/functions/{name}/aliases/{alias}/traffic": "fn traffic",
    "GET /api/v1/functions/{name}/invocations": "fn invocations",
    "GET /api/v1/functions/{name}/invocations/{invocation_id}": "fn invocation",
    "POST /api/v1/functions/{name}/invoke": "fn invoke",
    "GET /api/v1/functions/{name}/logs": "fn logs",
    "GET /api/v1/functions/{name}/versions": "fn versions",
    "POST /api/v1/functions/{name}/versions": "fn publish",
    "GET /api/v1/functions/{name}/versions/{version}": "fn versions",
    "GET /api/v1/keys": "keys list",
    "POST /api/v1/keys": "keys create",
    "DELETE /api/v1/keys/{key_id}": "keys revoke",
    "GET /api/v1/params": "param list",
    "DELETE /api/v1/params/{path}": "param delete",
    "GET /api/v1/params/{path}": "param get",
    "PUT /api/v1/params/{path}": "param set",
    "POST /api/v1/params/{path}/labels": "param label",
    "POST /api/v1/params/{path}/rollback": "param rollback",
    "GET /api/v1/params/{path}/versions": "param versions",
    "GET /api/v1/resolve": "resolve",
    "GET /api/v1/secrets": "sec list",
    "POST /api/v1/secrets": "sec create",
    "DELETE /api/v1/secrets/{name}": "sec delete",
    "GET /api/v1/secrets/{name}": "sec get",
    "PUT /api/v1/secrets/{name}": "sec put",
    "PUT /api/v1/secrets/{name}/policy": "sec policy",
    "POST /api/v1/secrets/{name}/restore": "sec restore",
    "POST /api/v1/secrets/{name}/reveal": "sec reveal",
    "POST /api/v1/secrets/{name}/rotate": "sec rotate",
    "GET /api/v1/secrets/{name}/versions": "sec versions",
    "GET /api/v1/triggers": "tr list",
    "POST /api/v1/triggers": "tr create",
    "DELETE /api/v1/triggers/{name}": "tr delete",
    "GET /api/v1/triggers/{name}": "tr get",
    "PUT /api/v1/triggers/{name}": "tr update",
    "POST /api/v1/triggers/{name}/disable": "tr disable",
    "POST /api/v1/triggers/{name}/enable": "tr enable",
    "GET /api/v1/triggers/{name}/history": "tr history",
    "POST /api/v1/triggers/{name}/rotate-secret": "tr rotate-secret",
    "GET /api/v1/vault/master-key": "sec master-key",
    "POST /api/v1/vault/master-key/rotate": "sec rotate-master-key",
    "GET /api/v1/whoami": "whoami",
    # users, groups, sign-in and tokens (aionix/iam)
    "GET /api/v1/auth/config": "auth config",
    "POST /api/v1/auth/login": "auth login",
    "POST /api/v1/auth/token": "auth token",
    "POST /api/v1/auth/refresh": "auth refresh",
    "POST /api/v1/auth/logout": "auth logout",
    "GET /api/v1/auth/jwks": "auth jwks",
    "POST /api/v1/auth/signing-keys/rotate": "auth rotate-key",
    "GET /api/v1/users": "user list",
    "POST /api/v1/users": "user create",
    "GET /api/v1/users/{name}": "user get",
    "PUT /api/v1/users/{name}": "user update",
    "DELETE /api/v1/users/{name}": "user delete",
    "GET /api/v1/groups": "group list",
    "POST /api/v1/groups": "group create",
    "GET /api/v1/groups/{name}": "group get",
    "DELETE /api/v1/groups/{name}": "group delete",
    "POST /api/v1/groups/{name}/members": "group add",
    "DELETE /api/v1/groups/{name}/members/{user}": "group remove",
    "GET /api/v1/workflows": "wf list",
    "POST /api/v1/workflows": "wf create",
    "GET /api/v1/workflows/schema": "wf schema",
    "POST /api/v1/workflows/validate": "wf validate",
    "DELETE /api/v1/workflows/{name}": "wf delete",
    "GET /api/v1/workflows/{name}": "wf get",
    "PUT /api/v1/workflows/{name}": "wf update",
    "POST /api/v1/workflows/{name}/executions": "wf run",
    "GET /api/v1/workflows/{name}/versions": "wf versions",
    "POST /api/v1/tasks": "task submit",
    "GET /api/v1/tasks": "task list",
    "GET /api/v1/tenants": "tenant list",
    "POST /api/v1/tenants": "tenant create",
    "POST /api/v1/tenants/{tenant}/suspend": "tenant suspend",
    "POST /api/v1/tenants/{tenant}/resume": "tenant resume",
    "PUT /api/v1/tenants/{tenant}/quotas": "tenant quotas",
    "GET /api/v1/tenants/{tenant}/usage": "tenant usage",
    "GET /api/v1/tasks/{id}": "task get",
    "POST /api/v1/tasks/{id}/cancel": "task cancel",
    "GET /api/v1/tasks/{id}/stream": "task follow",
    "POST /v1/tasks": "task submit",
    "GET /v1/tasks": "task list",
    "GET /v1/tasks/{id}": "task get",
    "POST /v1/tasks/{id}/cancel": "task cancel",
    "GET /v1/tasks/{id}/stream": "task follow",
    "GET /v1/stream/{id}": "task follow",
    "POST /api/v1/router/policy/reload": "router reload",
    "GET /api/v1/router/policy/versions": "router versions",
    "POST /api/v1/router/policy/rollback": "router rollback",
    "GET /api/v1/router/decisions": "router decisions",
    "GET /api/v1/usage": "usage show",
    "GET /api/v1/usage/budget": "usage budget",
    "PUT /api/v1/usage/budget": "usage budget",
}
#: Not for a CLI: the browser lands on the OAuth2 callback; webhooks are called by senders.
NOT_CLI = {
    "GET /api/v1/authflow/callback",
    "POST /hooks/{tenant}/{name}",
    # the browser's OIDC sign-in (the Studio): redirects and the one-time handoff code
    "GET /api/v1/auth/oidc/authorize",
    "GET /api/v1/auth/oidc/callback",
    "POST /api/v1/auth/oidc/exchange",
}


def command_paths():
    paths = set()

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if not subs or getattr(cmd, "invoke_without_command", False):
            paths.add(path)  # a command, or a group that also runs on its own (`aio admin audit` lists)
        if not subs:
            return
        for name, sub in subs.items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return paths


def test_every_route_has_a_command(server):
    spec = httpx.get(server.url + "/api/openapi.json").json()
    operations = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    assert operations - NOT_CLI - set(COMMANDS) == set(), "routes without a command"
    existing = command_paths()
    assert {c for c in COMMANDS.values() if c not in existing} == set()
