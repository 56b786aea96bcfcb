"""The settle stage: what the attempts on a page came to, told once.

A page is ``delivered`` when a first channel has it (sent now, or sent earlier and deduplicated),
``failed`` when every channel gave up, ``silenced`` when the channels left were silenced on a
retry. The timeline records who was notified, a channel that gave up after the page got through,
and a page that reached no channel; the ERROR log says so once when the first attempts all fail
and once more when the last retry gives up.
"""

from __future__ import annotations

from alerts.notify.stage import Context, log
from monitor.storage import Database, Session, deliveries, timeline


class SettleStage:
    def __init__(self, db: Database):
        self.db = db

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        """Runs after the other stages even when they held every channel back."""
        if ctx.page_id is not None:
            with self.db.session() as s:
                self._settle(s, ctx)
        return channels

    def _settle(self, s: Session, ctx: Context) -> None:
        alert, now = ctx.alert, ctx.now
        by_status = {status: [o for o in ctx.outcomes if o.status == status]
                     for status in ("sent", "failed", "silenced", "deduplicated")}
        sent, failed = by_status["sent"], by_status["failed"]
        page = deliveries.page(s, ctx.page_id)
        status = page.status

        def event(kind: str, message: str, data: dict) -> None:
            timeline.add_event_if_exists(s, page.incident_id, now, kind, "system", message, data)

        if sent or by_status["deduplicated"]:
            if status != "delivered":
                status = "delivered"
                deliveries.settle_page(s, page.id, status, now)
            if page.status == "pending" and page.alarm_at is not None:
                log.warning("[stage=notify] incident #%d %s delivered after every channel had failed",
                            alert.incident_id, alert.kind)
        if sent:
            deliveries.mark_notified(s, page.incident_id, now)
            event("notified", "已通知：" + "、".join(o.label for o in sent),
                  {"alert": alert.kind, "channels": [o.job.channel for o in sent]})
        if by_status["deduplicated"]:
            names = "、".join(o.job.channel for o in by_status["deduplicated"])
            event("notify_deduplicated", f"未重复发送：{names} 已收到过此通知", {"alert": alert.kind, "dedup_key": alert.dedup_key})
        for o in failed:
            if o.gave_up and status == "delivered":
                event("notify_gave_up", f"{o.job.channel} 发送失败，已放弃（共 {o.attempt} 次）：{o.error}",
                      {"alert": alert.kind, "channel": o.job.channel})
        if status != "pending" or not (failed or by_status["silenced"]):
            return
        rows = deliveries.deliveries_of(s, page.id)
        pending = [d for d in rows if d.status == "pending"]
        if pending:
            if failed and page.alarm_at is None:
                deliveries.raise_alarm(s, page.id, now)
                retry_at = min(d.next_attempt_at for d in pending)
                reasons = "; ".join(f"{o.job.channel}: {o.error}" for o in failed)
                log.error("[stage=notify] incident #%d %s reached NO channel: %s; retrying from %s",
                          alert.incident_id, alert.kind, reasons, retry_at.isoformat())
                event("notify_failed", f"通知全部失败（将自动重试）：{reasons}",
                      {"alert": alert.kind, "final": False, "retry_at": retry_at.isoformat()})
        elif any(d.status == "silenced" for d in rows):
            deliveries.settle_page(s, page.id, "silenced", now)
        else:
            deliveries.settle_page(s, page.id, "failed", now)
            reasons = "; ".join(f"{d.channel}: {d.last_error}" for d in rows)
            log.error("[stage=notify] incident #%d %s reached NO channel: %s; every retry is used up",
                      alert.incident_id, alert.kind, reasons)
            event("notify_failed", f"通知全部失败，已放弃重试：{reasons}", {"alert": alert.kind, "final": True})
