"""The telemedicine server: settings, database, REST API and the application factory."""
