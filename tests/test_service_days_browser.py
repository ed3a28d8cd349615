"""A service day in a real browser, in Simplified Chinese: plan, publish, book to full,
waitlist, cancel (the waitlisted patient moves up onto the list to call), attendance and undo."""

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from clinic.models import Booking, ServiceDay

pytestmark = pytest.mark.browser


def test_a_service_day_from_plan_to_attendance_in_simplified_chinese(
    new_page, demo_data, make_patient
):
    names = ("王小明", "李小红", "张小华")
    patients = [make_patient(chinese_name=n, phone=f"+8529876543{i}") for i, n in enumerate(names)]
    page = new_page("nurse@jinzhou.demo")
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans-CN")

    # Plan a centre day with one slot of two places, then publish it.
    page.goto("/service-days/new")
    page.get_by_label("日期").fill((dt.date.today() + dt.timedelta(days=5)).isoformat())
    page.get_by_label("开始时间").fill("09:00")
    page.get_by_label("结束时间").fill("09:30")
    page.get_by_label("时段长度（分钟）").fill("30")
    page.get_by_label("每时段名额（上门服务：上门次数）").fill("2")
    page.get_by_label("英文说明").fill("Diabetes review")
    page.get_by_role("button", name="保存为草稿").click()
    page.wait_for_url(re.compile(r"/service-days/\d+$"))
    day_url = page.url
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#service-day")).to_contain_text("已发布")
    day = ServiceDay.get(ServiceDay.description_en == "Diabetes review")

    # Book two patients (the first from the patient page): the slot is full.
    page.goto(f"/patients/{patients[0].id}")
    booking_form = page.locator(f'#patient-service-days form[action="/service-days/{day.id}/book"]')
    booking_form.get_by_role("button", name="预约").click()
    page.wait_for_url(re.compile(r"/book\?patient=\d+"))
    page.locator("#booking-form").get_by_role("button", name="预约").click()
    expect(page.locator("#service-day")).to_contain_text("已预约 1 / 2")
    page.goto(f"/service-days/{day.id}/book?patient={patients[1].id}")
    page.locator("#booking-form").get_by_role("button", name="预约").click()
    expect(page.locator("#service-day")).to_contain_text("已预约 2 / 2")

    # The third finds the slot full: the message offers the waitlist.
    page.goto(f"/service-days/{day.id}/book?patient={patients[2].id}")
    page.locator("#booking-form").get_by_role("button", name="预约").click()
    expect(page.locator(".flash-error")).to_contain_text("现已满额")
    page.get_by_role("button", name="加入候补名单").click()
    expect(page.locator("#service-day")).to_contain_text("在候补名单")

    # Cancelling the first booking moves the waitlisted patient up and onto the list to call.
    first = Booking.get(Booking.patient == patients[0].id)
    page.locator(f"#booking-{first.id}").get_by_role("button", name="取消预约").click()
    expect(page.locator("#flashes")).to_contain_text("张小华 CHAN, Tai Man 已从候补名单转为预约")
    page.goto("/service-days/to-call")
    expect(page.locator("main")).to_contain_text("张小华")

    # Attendance in one tap, swapped in place, and undone.
    page.goto(day_url)
    second = Booking.get(Booking.patient == patients[1].id)
    row = page.locator(f"#booking-{second.id}")
    row.get_by_role("button", name="已到场").click()
    expect(row.locator(".pill")).to_have_text("已到场")
    row.get_by_role("button", name="撤销").click()
    expect(row.locator(".pill")).to_have_text("已预约")
    assert Booking.get_by_id(second.id).state == "booked"
