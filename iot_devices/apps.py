from django.apps import AppConfig


class IotDevicesConfig(AppConfig):
    name = "iot_devices"
    verbose_name = "IoT devices"
