"""MLflow's accounts after a restore: the restored auth database keeps every user and grant
of the backup, and genaug's own accounts take the passwords of the stack they now serve
(a new stack, or a cluster with new Secrets, made its own); the server must be stopped."""

from __future__ import annotations


def reset_passwords(auth_database_uri: str, passwords: dict[str, str], admin_username: str) -> list[str]:
    """Give each account in ``passwords`` (username -> password) that password, creating it
    when the backup had none; return the usernames."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(auth_database_uri)
    try:
        for username, password in passwords.items():
            if store.has_user(username):
                store.update_user(username, password=password)
            else:
                store.create_user(username, password, is_admin=username == admin_username)
    finally:
        store.engine.dispose()
    return sorted(passwords)
