"""Analytics: the supervisor's read models — backlog per stage and cut-off, throughput, at-risk orders, staff per zone
against plan. Read models only: nothing here writes another app's data."""
