"""Layer data: jobs from CSV tables and job files, and the catalog that finds a job by name, module or file."""
