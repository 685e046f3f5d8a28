"""The deployment in deploy/, started whole from its own files and tested through its front door."""
