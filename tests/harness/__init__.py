"""Launchers for real servers (Bolt, Redis, vLLM) that the test suite starts on free loopback ports."""
