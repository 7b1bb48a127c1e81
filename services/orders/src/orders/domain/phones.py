"""Merchant contact phones: any real phone number is a contact, only a mobile one receives SMS.

Merchants often give a landline (010-…) or a 400 hotline as their after-sales contact; the
notifier then sends them in-site messages only, and onboarding says so (``sms_warnings``)."""
from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

REGION = "CN"  # numbers without a country code are mainland China numbers
CONTACT_CANNOT_RECEIVE_SMS = "contact_cannot_receive_sms"


def _parse(phone: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(phone, REGION)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def is_valid(phone: str) -> bool:
    return _parse(phone) is not None


def sms_capable(phone: str) -> bool:
    number = _parse(phone)
    return number is not None and phonenumbers.number_type(number) == PhoneNumberType.MOBILE


def sms_warnings(phone: str) -> list[dict]:
    """What the operator must know about a contact phone (empty for a mobile number)."""
    if sms_capable(phone):
        return []
    return [{"code": CONTACT_CANNOT_RECEIVE_SMS, "field": "contact_phone",
             "message": f"{phone} is not a mobile number and cannot receive SMS: the merchant's notifications "
                        "(day-10 reminder, auto-refund) reach it as in-site messages only"}]
