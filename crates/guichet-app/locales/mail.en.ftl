# Emails sent by guichet, in English. Each notice has a subject (-subject)
# and a body (-body). Variables in braces.

account-verification-subject = Confirm your email address
account-verification-body =
    Hello { $name },

    To activate your account, open this link within 7 days:
    { $link }

    If you did not create an account, ignore this message.

application-received-subject = Application received: { $program }
application-received-body =
    Hello { $name },

    We received your application { $dossier } to the program “{ $program }”.
    You can follow it here:
    { $link }

information-requested-subject = Information requested: { $program }
information-requested-body =
    Hello { $name },

    To process your application { $dossier }, we need information by { $due }:

    { $message }

    Answer here:
    { $link }

decision-approved-subject = Application approved: { $program }
decision-approved-body =
    Hello { $name },

    Your application { $dossier } is approved for an amount of { $amount }.
    The decision letter and its reasons are here:
    { $link }

decision-refused-subject = Decision on your application: { $program }
decision-refused-body =
    Hello { $name },

    Your application { $dossier } is not approved. The decision letter explains
    why and how to ask for a review:
    { $link }

agreement-to-sign-subject = To sign: { $title }
agreement-to-sign-body =
    Hello { $name },

    “{ $title }” is waiting for your signature, until { $until }:
    { $link }

    { $message }

signing-reminder-subject = Reminder — to sign: { $title }
signing-reminder-body =
    Hello { $name },

    “{ $title }” is still waiting for your signature, until { $until }:
    { $link }

payment-sent-subject = Payment sent: { $program }
payment-sent-body =
    Hello { $name },

    A payment of { $amount } to { $payee } was sent to our financial institution
    on { $date } (reference { $reference }). It should be deposited within a few
    business days.
    { $link }

repayment-reminder-subject = Reminder: repayment due { $due }
repayment-reminder-body =
    Hello { $name },

    The balance of your loan { $dossier }, { $balance }, is to be repaid by
    { $due }.
    { $link }
