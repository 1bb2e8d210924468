from django.apps import AppConfig


class HealthMetricsConfig(AppConfig):
    name = "health_metrics"
    verbose_name = "Health metrics"

    def ready(self) -> None:
        from accounts.preferences import register_unit_preferences_validator

        from .display import validate_unit_preferences

        register_unit_preferences_validator(validate_unit_preferences)
