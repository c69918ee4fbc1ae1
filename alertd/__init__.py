"""alertd: events in, phone calls and SMS out."""
import sys

# structlog.dev imports rich, when it is installed, for its console tracebacks;
# here rich comes only with the test tools (schemathesis) and would cost the
# daemon about 7 MB of memory. Kept out, the console log format prints plain
# tracebacks, as it does on an install without the test extras.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` raise ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
