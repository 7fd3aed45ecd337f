"""Configuration: environment read once into typed settings, Celery and logging set-up."""

from config.errors import SettingsError
from config.settings import Settings, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
