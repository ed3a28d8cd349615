"""Two-way referral: clinic → hub hospital → back-referral, and hub → clinic."""
