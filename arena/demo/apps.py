from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "arena.demo"
    label = "arena_demo"
    verbose_name = "Arena demo site"
