"""Date and time formats of the admin (``FORMAT_MODULE_PATH``): one format for a moment,
seconds and zone included (``whalefall.moments``)."""

from whalefall.moments import MOMENT_FORMAT

DATETIME_FORMAT = MOMENT_FORMAT
SHORT_DATETIME_FORMAT = MOMENT_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
