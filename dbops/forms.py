from __future__ import annotations

from django import forms

from dbops.models import DatabaseTarget
from portal.models import Component, Tenant

DEFAULT_THRESHOLD_MS = 100.0


class DatabaseTargetForm(forms.ModelForm):
    """Used by the portal page and the admin. The password is write-only: never
    rendered back, and left blank on edit it keeps the stored one."""

    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(
        label="Remove the stored password",
        required=False,
        help_text="For servers that authenticate without one (peer, certificate, trust).",
    )
    component = forms.ModelChoiceField(
        label="Catalog component",
        queryset=Component.objects.none(),
        required=False,
        help_text="Left empty, a DATABASE component named after the target is created.",
    )

    class Meta:
        model = DatabaseTarget
        fields = [
            "name",
            "host",
            "port",
            "database",
            "user",
            "sslmode",
            "tenants",
            "disk_capacity_bytes",
            "connections_threshold_percent",
            "is_active",
            "memory_bytes",
            "cpu_count",
            "storage_type",
            "expected_concurrent_users",
            "restartable",
            "restart_command",
        ]
        labels = {
            "user": "User",
            "sslmode": "SSL mode",
            "disk_capacity_bytes": "Disk capacity (bytes)",
            "connections_threshold_percent": "Connections threshold (%)",
            "is_active": "Active (included in daily statistics snapshots)",
            "memory_bytes": "RAM (bytes)",
            "cpu_count": "CPUs",
            "expected_concurrent_users": "Expected concurrent users",
            "restartable": "Restartable by the portal",
        }
        help_texts = {
            "tenants": "Tenants whose data this database holds; none means shared.",
            "disk_capacity_bytes": "Used by DISK_SPACE pre-checks when the data directory "
            "cannot be inspected.",
            "memory_bytes": "Configuration rules judge memory settings against it; read by "
            "psutil when empty and the database runs on this host.",
            "restart_command": "Run without a shell by the worker for an approved restart "
            "step, e.g. pg_ctl -D /var/lib/postgresql/data -l /var/log/pg.log -m fast -w "
            "restart.",
        }
        widgets = {"tenants": forms.SelectMultiple(attrs={"size": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenants"].queryset = Tenant.objects.order_by("name")
        self.fields["tenants"].required = False
        if self.instance.pk:
            self.fields.pop("component", None)
            stored = "A password is stored." if self.instance.has_password else "None stored."
            self.fields["password"].help_text = f"{stored} Leave blank to keep it."
        else:
            self.fields.pop("clear_password", None)
            if "component" in self.fields:
                self.fields["component"].queryset = Component.objects.filter(
                    kind=Component.Kind.DATABASE, database_target__isnull=True
                ).order_by("name")
            self.fields["password"].help_text = "Stored encrypted; never shown again."

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("restartable") and not (cleaned.get("restart_command") or "").strip():
            self.add_error("restart_command", "A restartable target needs its restart command.")
        return cleaned

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields if name != "tenants"}


class ThresholdForm(forms.Form):
    threshold = forms.FloatField(
        label="Mean time above (ms)",
        min_value=0,
        max_value=86_400_000,
        required=False,
        error_messages={
            "invalid": "Enter the threshold as a number of milliseconds.",
            "min_value": "The threshold cannot be negative.",
            "max_value": "The threshold must be at most one day (86 400 000 ms).",
        },
    )

    def threshold_ms(self) -> float:
        value = self.cleaned_data.get("threshold") if self.is_valid() else None
        return DEFAULT_THRESHOLD_MS if value is None else value


class ColumnsField(forms.Field):
    """Index columns as repeated hidden inputs: a column name may hold any character."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> tuple[str, ...]:
        return tuple(value or ())

    def validate(self, value) -> None:
        super().validate(value)
        if not value or any(not c or len(c) > 63 for c in value):
            raise forms.ValidationError("Name the index columns.")


class ProposeForm(forms.Form):
    queryid = forms.IntegerField(min_value=-(2**63), max_value=2**63 - 1)
    schema = forms.CharField(max_length=63, strip=False)
    table = forms.CharField(max_length=63, strip=False)
    column = ColumnsField()
