"""The stack's env files as the library loads them: what is exported wins, and a file parsed
once is still followed when it changes or when a variable it gave is removed."""

from genaug.services import endpoints
from genaug.stack.envfile import write_env


def test_env_files_fill_unset_variables_and_follow_a_rewritten_file(tmp_path, monkeypatch):
    stack_env, admin_env = tmp_path / "stack.env", tmp_path / "admin.env"
    monkeypatch.setenv(endpoints.STACK_ENV_VAR, str(stack_env))
    for name in ("GENAUG_TEST_ENDPOINT", "GENAUG_TEST_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert endpoints.load_stack_env() == {}  # no file yet: nothing set, no error

    write_env(stack_env, {"GENAUG_TEST_ENDPOINT": "a:1"}, "test")
    write_env(admin_env, {"GENAUG_TEST_KEY": "k1"}, "test")
    assert endpoints.load_stack_env() == {"GENAUG_TEST_ENDPOINT": "a:1"}
    assert endpoints.load_admin_env() == {"GENAUG_TEST_KEY": "k1"}
    monkeypatch.delenv("GENAUG_TEST_KEY")
    endpoints.load_admin_env()  # the same file: filled again
    assert endpoints.require(["GENAUG_TEST_ENDPOINT", "GENAUG_TEST_KEY"], "test values") == ["a:1", "k1"]

    write_env(admin_env, {"GENAUG_TEST_KEY": "k2"}, "test")  # `make up` again: a new key
    monkeypatch.delenv("GENAUG_TEST_KEY")
    endpoints.load_admin_env()
    assert endpoints.require(["GENAUG_TEST_KEY"], "test values") == ["k2"]

    monkeypatch.setenv("GENAUG_TEST_KEY", "exported")  # exported by hand: the file does not override it
    endpoints.load_admin_env()
    assert endpoints.require(["GENAUG_TEST_KEY"], "test values") == ["exported"]
