"""Collect every problem one scan finds, then raise them together as a single DataError."""

from nnet.errors import DataError

MAX_SHOWN = 20


class ProblemList:
    """Accumulates one-line problem descriptions (each naming its file and the fix)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)

    def raise_if_any(self) -> None:
        """Raise one :class:`DataError` listing at most ``MAX_SHOWN`` problems, if there are any
        (a single problem is its own one-line message)."""
        if not self.messages:
            return
        count = len(self.messages)
        if count == 1:
            raise DataError(self.messages[0])
        lines = [f"{self.title}: {count} problem{'s' if count > 1 else ''} found"]
        lines += [f"  - {message}" for message in self.messages[:MAX_SHOWN]]
        if count > MAX_SHOWN:
            lines.append(f"  ... and {count - MAX_SHOWN} more")
        raise DataError("\n".join(lines))
