from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from accounts import events

        from .listeners import care_team_granted, care_team_revoked

        events.listen(events.CARE_TEAM_GRANTED, care_team_granted)
        events.listen(events.CARE_TEAM_REVOKED, care_team_revoked)
