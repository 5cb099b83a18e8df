"""Admin of alerts: channels (secrets write-only, "Send test"), rules, deliveries and the
read-only event outbox. Deliveries and events concern the whole estate: only people who see
every instance read them."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from whalefall import scope
from whalefall.admin import BigTableMixin, ReadOnlyAdminMixin
from whalefall.alerts import services
from whalefall.alerts.models import (
    APPRISE_SCHEMES,
    Channel,
    ChannelKind,
    Delivery,
    Event,
    Rule,
    Scope,
)

_SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class ChannelForm(forms.ModelForm):
    """The URL and the signing secret are write-only: typed in, encrypted, never shown."""

    url = forms.CharField(
        label=_("URL"),
        required=False,
        strip=True,
        max_length=2000,
        widget=_SECRET_WIDGET,
        help_text=_(
            "Webhook: the https:// address receiving the JSON. Chat service: the Apprise URL, "
            "e.g. dingtalk://token/, feishu://token, wecombot://key, slack://…, msteams://…. "
            "Stored encrypted; leave empty to keep the stored one."
        ),
    )
    secret = forms.CharField(
        label=_("Signing secret"),
        required=False,
        strip=False,
        max_length=500,
        widget=_SECRET_WIDGET,
        help_text=_(
            "Webhook: the HMAC-SHA256 key of the X-WhaleFall-Signature header. Leave empty to "
            "keep the stored one."
        ),
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "enabled", "recipients", "url", "secret"]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        url = cleaned.get("url", "")
        kind_changed = self.instance.pk and kind != self.instance.kind
        needs_url = kind in (ChannelKind.WEBHOOK, ChannelKind.APPRISE)
        if needs_url and not url and (not self.instance.has_url or kind_changed):
            self.add_error("url", _("This channel needs a URL."))
        if kind == ChannelKind.WEBHOOK:
            if url:
                try:
                    services._outbound_check(url)
                except services.DeliveryFailed as exc:
                    self.add_error("url", str(exc))
            if not cleaned.get("secret") and not self.instance.has_secret:
                self.add_error("secret", _("A webhook needs a signing secret."))
        if kind == ChannelKind.APPRISE and url:
            scheme = url.split("://", 1)[0].lower()
            if scheme not in APPRISE_SCHEMES:
                self.add_error(
                    "url",
                    _("Use one of the chat services: %(schemes)s.")
                    % {"schemes": ", ".join(f"{s}://" for s in sorted(APPRISE_SCHEMES))},
                )
            elif services.apprise_plugin(url) is None:
                self.add_error("url", _("Apprise cannot read this URL; check its token."))
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("url"):
            self.instance.set_url(self.cleaned_data["url"])
        if self.cleaned_data.get("secret"):
            self.instance.set_secret(self.cleaned_data["secret"])
        return super().save(commit)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "enabled", "url_hint", "secret_status"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["url_hint", "secret_status", "created_at", "updated_at"]
    fields = [
        "name",
        "kind",
        "enabled",
        "recipients",
        "url",
        "url_hint",
        "secret",
        "secret_status",
        "created_at",
        "updated_at",
    ]
    actions = ["send_test"]
    change_form_template = "admin/alerts/channel/change_form.html"

    @admin.display(description=_("signing secret"))
    def secret_status(self, obj: Channel) -> str:
        if obj.kind != ChannelKind.WEBHOOK:
            return "—"
        return _("set") if obj.has_secret else _("not set")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("alerts.test_channel"):
            actions.pop("send_test", None)
        return actions

    def get_urls(self):
        return [
            path(
                "<int:pk>/send-test/",
                self.admin_site.admin_view(require_POST(self.send_test_view)),
                name="alerts_channel_send_test",
            ),
            *super().get_urls(),
        ]

    def send_test_view(self, request, pk: int):
        if not request.user.has_perm("alerts.test_channel"):
            raise PermissionDenied
        channel = get_object_or_404(Channel, pk=pk)
        self._queue_tests(request, [channel])
        return HttpResponseRedirect(reverse("admin:alerts_channel_change", args=[channel.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_send_test": request.user.has_perm("alerts.test_channel"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Send a test message"), permissions=["test"])
    def send_test(self, request, queryset):
        self._queue_tests(request, list(queryset))

    def has_test_permission(self, request) -> bool:
        return request.user.has_perm("alerts.test_channel")

    def _queue_tests(self, request, channels: list[Channel]) -> None:
        for channel in channels:
            services.channel_send_test(channel=channel)
        self.message_user(
            request,
            _("Test message queued for %(names)s; see the deliveries for the outcome.")
            % {"names": ", ".join(c.name for c in channels)},
            messages.SUCCESS,
        )


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = [
            "name", "enabled", "trigger", "threshold", "description", "scope", "tags",
            "environments", "channels", "mode", "digest_time",
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == Scope.TAGS and not cleaned.get("tags"):
            self.add_error("tags", _("Choose at least one tag."))
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "trigger", "threshold", "scope", "mode", "digest_time", "enabled"]
    list_filter = ["enabled", "trigger", "mode", "scope"]
    search_fields = ["name"]
    filter_horizontal = ["tags", "channels"]
    readonly_fields = ["last_digest_at", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "trigger", "threshold", "description"]}),
        (_("Instances"), {"fields": ["scope", "tags", "environments"]}),
        (_("Delivery"), {"fields": ["channels", "mode", "digest_time", "last_digest_at"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]


class _EstateWideReadOnly(BigTableMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only, never counted in full, and only for people who see every instance."""

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and scope.sees_whole_estate(request)

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) and scope.sees_whole_estate(request)


@admin.register(Delivery)
class DeliveryAdmin(_EstateWideReadOnly):
    list_display = [
        "created_at",
        "rule",
        "channel",
        "kind",
        "status",
        "attempts",
        "event_count",
        "short_error",
        "short_preview",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["rule", "channel"]
    fields = [
        "rule",
        "channel",
        "kind",
        "status",
        "attempts",
        "last_error",
        "event_count",
        "subject",
        "preview",
        "created_at",
        "updated_at",
        "sent_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("last error"))
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error[:120]

    @admin.display(description=_("payload preview"))
    def short_preview(self, obj: Delivery) -> str:
        return obj.preview.splitlines()[0][:160] if obj.preview else ""


@admin.register(Event)
class EventAdmin(_EstateWideReadOnly):
    list_display = ["created_at", "kind", "instance", "dedup_key", "dispatched_at"]
    list_filter = ["kind"]
    list_select_related = ["instance"]
    raw_id_fields = ["instance"]
    fields = ["kind", "instance", "dedup_key", "payload", "created_at", "dispatched_at"]
    readonly_fields = fields
