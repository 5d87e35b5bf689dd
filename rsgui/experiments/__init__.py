"""Reproductions of the method's experimental protocols, writing tables, plots and a report."""
