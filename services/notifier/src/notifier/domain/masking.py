"""Phone numbers never appear whole in logs or API responses."""


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
