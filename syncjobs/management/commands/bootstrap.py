"""``manage.py bootstrap``: roles, the default schedule and, optionally, an administrator."""

from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError

from syncjobs import services


@dataclass
class Bootstrapped:
    """What a bootstrap did, as lines to show, and the new administrator's password if any."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    username: str | None = None
    password: str | None = None


def bootstrap(*, admin: bool, username: str = "admin", email: str = "") -> Bootstrapped:
    """Roles, default schedule, unschedulable tasks disabled and, with ``admin``, the first
    administrator (idempotent)."""
    done = Bootstrapped()
    try:
        added = services.roles_install()
    except services.RoleDefinitionError as exc:
        raise CommandError(str(exc)) from exc
    done.lines += [f"Role {role}: {count} permission(s) added." for role, count in added.items()]
    created = services.schedule_install_defaults()
    done.lines.append(
        f"Default schedule: {len(created)} periodic task(s) created"
        + (f" ({', '.join(created)})." if created else ".")
    )
    disabled = services.periodic_tasks_disable_unschedulable()
    if disabled:
        done.warnings.append(
            f"Disabled {len(disabled)} periodic task(s) that are not schedulable "
            f"(see the audit log): {', '.join(disabled)}."
        )
    if admin:
        user, done.password = services.admin_user_ensure(username=username, email=email)
        done.username = user.get_username()
        if done.password is None:
            done.lines.append(
                f"Administrator {done.username!r} already exists; password unchanged "
                f"(manage.py changepassword {done.username} sets a new one)."
            )
    return done


def framed(lines: list[str]) -> str:
    """``lines`` in a box, so that they stand out in a scrolling terminal."""
    width = max(len(line) for line in lines)
    rule = "─" * (width + 2)
    return "\n".join([f"┌{rule}┐", *(f"│ {line.ljust(width)} │" for line in lines), f"└{rule}┘"])


def password_lines(done: Bootstrapped) -> list[str]:
    return [
        f"Administrator {done.username!r} created.",
        f"Password (shown only this once): {done.password}",
    ]


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
        done = bootstrap(
            admin=options["admin"], username=options["username"], email=options["email"]
        )
        for line in done.lines:
            self.stdout.write(line)
        for line in done.warnings:
            self.stdout.write(self.style.WARNING(line))
        if done.password is not None:
            self.stdout.write(self.style.SUCCESS(framed(password_lines(done))))
