"""devices.*: Android devices over ADB for the phone agent (smoke/service area)."""
