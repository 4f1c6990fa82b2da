"""Launchers of real servers (Bolt, Redis, vLLM) that tests start on free loopback ports."""
