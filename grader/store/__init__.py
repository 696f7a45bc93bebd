"""PostgreSQL: where the server is, connections, migrations, and every SQL statement by name;
nothing outside this package runs SQL.
"""
