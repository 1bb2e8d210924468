from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and care team"

    def ready(self) -> None:
        from config.inputs import name_the_valid_choices

        from . import schema  # noqa: F401 - registers the OpenAPI auth extension

        name_the_valid_choices()
