"""The interfaces: the command line, the HTTP server and its web page. They parse, call the library, print."""
