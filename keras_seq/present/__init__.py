"""What people read: figures (plots) and tables (tables), drawn from reports and summaries."""
