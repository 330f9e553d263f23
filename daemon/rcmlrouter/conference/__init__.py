"""Conferences: rooms, the in-process mixer, participants, their events and records."""
