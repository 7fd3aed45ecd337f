"""The shape of a COSMOS phone number: the message rules check it, the scrubbers find it in text."""

from __future__ import annotations

import re

NUMBER_PATTERN = "0[0-9]{14}"
"""0 and 14 ASCII digits (COSMOS's `to`)."""

NUMBER = re.compile(NUMBER_PATTERN)
"""A whole value that is a number: `NUMBER.fullmatch(value)`."""

NUMBER_IN_TEXT = re.compile(rf"(?<![0-9]){NUMBER_PATTERN}(?![0-9])")
"""A number standing alone inside free text (log lines, message texts)."""
