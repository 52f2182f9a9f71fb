"""The keras plugin's hook implementations. Imports nothing heavy: registrations are lazy."""
