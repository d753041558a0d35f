"""Test helpers that run real model code without downloaded weights."""
