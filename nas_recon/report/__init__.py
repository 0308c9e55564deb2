"""Reports: tables, equal-cost comparisons, drawings, cost reports and the measured evidence they quote."""
