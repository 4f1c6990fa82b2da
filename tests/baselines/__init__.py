"""Tests for the classical baselines."""
