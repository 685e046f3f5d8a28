"""The specialist's signed consultation report (会诊报告): diagnosis codes, rendering, signing, verification."""
