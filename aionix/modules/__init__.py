"""Signed agent modules (AIP packages): install, verify, quarantine and run (issue 20)."""
