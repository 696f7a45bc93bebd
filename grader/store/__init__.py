"""PostgreSQL: where the server is, connections, migrations, and one module per table family whose
SQL statements are named in sql/<module>.sql; nothing outside this package runs SQL.
"""
