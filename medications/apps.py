from django.apps import AppConfig


class MedicationsConfig(AppConfig):
    name = "medications"
    verbose_name = "Medications"

    def ready(self) -> None:
        from . import events, selectors, signals

        events.register_kinds()
        selectors.register_score_part()
        signals.connect()
