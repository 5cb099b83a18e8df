"""``manage.py bootstrap``: roles, the default schedule and, optionally, an administrator."""

from django.core.management.base import BaseCommand, CommandError

from syncjobs import services


class Command(BaseCommand):
    help = (
        "Create the role groups with their permissions and the default schedule "
        "(idempotent: adds what is missing, never overwrites edits), and disable periodic "
        "tasks that are not schedulable; with --admin, create an administrator and print "
        "its generated password once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--admin", action="store_true", help="Also create an administrator.")
        parser.add_argument("--username", default="admin", help="Administrator user name.")
        parser.add_argument("--email", default="", help="Administrator e-mail address.")

    def handle(self, *args, **options):
        try:
            added = services.roles_install()
        except services.RoleDefinitionError as exc:
            raise CommandError(str(exc)) from exc
        for role, count in added.items():
            self.stdout.write(f"Role {role}: {count} permission(s) added.")
        created = services.schedule_install_defaults()
        self.stdout.write(
            f"Default schedule: {len(created)} periodic task(s) created"
            + (f" ({', '.join(created)})." if created else ".")
        )
        disabled = services.periodic_tasks_disable_unschedulable()
        if disabled:
            self.stdout.write(
                self.style.WARNING(
                    f"Disabled {len(disabled)} periodic task(s) that are not schedulable "
                    f"(see the audit log): {', '.join(disabled)}."
                )
            )
        if options["admin"]:
            user, password = services.admin_user_ensure(
                username=options["username"], email=options["email"]
            )
            if password is None:
                self.stdout.write(
                    f"Administrator {user.get_username()!r} already exists; password unchanged "
                    f"(manage.py changepassword {user.get_username()} sets a new one)."
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Administrator {user.get_username()!r} created. "
                        f"Password (shown only this once): {password}"
                    )
                )
