from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

from rapidsms.backends.kannel.views import DeliveryReportView, KannelBackendView


def healthz(request):
    """Readiness probe for run.sh: no database access."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    # Kannel MO messages (Kannel's sms-service get-url points here).
    path(
        "backends/kannel-fake-smsc/",
        KannelBackendView.as_view(backend_name="kannel-fake-smsc"),
        name="kannel-fake-smsc",
    ),
    # Kannel delivery reports, mapped as in rapidsms.backends.kannel.urls
    # (unused by the benchmark: the backend sets no delivery_report_url).
    path(
        "kannel/delivery-report/",
        DeliveryReportView.as_view(),
        name="kannel-delivery-report",
    ),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
]
