"""The store: the only code that speaks SQL (engine, schema, migrations, repositories)."""
