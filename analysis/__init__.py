"""Turn run records into tables and figures. Reads records only; never imports a backend."""
