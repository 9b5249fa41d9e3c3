import argparse
import math
import unicodedata

from django.http import QueryDict

from config.errors import ApplicationError


def is_whole_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def positive_seconds(text: str) -> float:
    """A command's timeout option: a finite number of seconds above zero.
    HTTP clients refuse 0, negative, infinite and NaN timeouts only once a
    request is under way, with a traceback."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above zero, such as 30 or 2.5."
        )
    return seconds


def single_parameter(params: QueryDict, name: str) -> str | None:
    """The one value of query parameter ``name``, or None when it is absent;
    a parameter given twice is refused rather than one of its values picked
    in silence."""
    values = params.getlist(name)
    if len(values) > 1:
        raise ApplicationError(f"Bad query parameter {name}: give it only once.")
    return values[0] if values else None


# The marks that embed, override or isolate the direction of the text after
# them: text holding one shows what follows it, the page's own words too,
# reversed or reordered.
DIRECTION_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def direction_control_in(text: str) -> str | None:
    """The first direction control in ``text`` as ``U+202E``, or None."""
    for character in text:
        if unicodedata.bidirectional(character) in DIRECTION_CONTROLS:
            return f"U+{ord(character):04X}"
    return None
