"""Labour: staff, skills, shifts, engineered and measured rates, staffing plans from the forecast workload."""
