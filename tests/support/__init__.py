"""Shared test harness: real daemons on free ports, fake clocks, external helper processes."""
