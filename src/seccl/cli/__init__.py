"""The `seccl` command line: thin command modules that parse, call the library and print."""
