"""Tests of the Palyra Python skill SDK (run on the host CPython)."""
