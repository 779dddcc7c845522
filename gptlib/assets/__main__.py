"""``python -m gptlib.assets prepare``: fetch and check the offline data files (``make data``)."""
import sys

from . import AssetError
from .prepare import prepare

if sys.argv[1:] not in ([], ["prepare"]):
    sys.exit("usage: python -m gptlib.assets [prepare]")
try:
    prepare()
except AssetError as e:
    sys.exit(f"error: {e}")
