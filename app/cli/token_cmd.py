"""`simmim token create|list|revoke`: bearer tokens for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.context import console, err_console, new_table, ready_state

app = typer.Typer()  # merged into the root app by app.cli
token_app = typer.Typer(help="API tokens for `simmim serve`.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. grafana.")],
    scope: Annotated[str, typer.Option("--scope", help="read | admin (admin may write).")] = "read",
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from app.api.tokens import Scope, create_token

    try:
        chosen = Scope(scope)
    except ValueError:
        raise typer.BadParameter("use read or admin", param_hint="--scope") from None
    info, secret = create_token(ready_state(ctx).engine, name, chosen)
    err_console.print(f"token {info.name!r} ({info.scope}) created; it is shown only now:")
    console.print(secret)


@token_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every token: name, scope, first characters, created, last used, revoked."""
    from app.api.tokens import list_tokens

    table = new_table("id", "name", "scope", "starts", "created", "last used", "revoked")
    for t in list_tokens(ready_state(ctx).engine):
        table.add_row(
            str(t.id),
            t.name,
            t.scope,
            t.prefix + "…",
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
        )
    console.print(table)


@token_app.command("revoke")
def revoke(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Token name or id.")]
) -> None:
    """Stop a token working, at once."""
    from app.api.tokens import revoke_token

    info = revoke_token(ready_state(ctx).engine, ref)
    console.print(f"token {info.name!r} revoked")
